"""Reference destination: a local, Clarifai-compatible inputs API (PostInputs/ListInputs) on SQLite.

`store.Store` holds users, apps, hashed API keys and inputs; `server.create_app`/`server.running`
serve it over HTTP; `commands.destination` is its click CLI.
"""
