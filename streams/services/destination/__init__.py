"""Reference destination: a local, Clarifai-compatible inputs API (PostInputs/ListInputs) on SQLite or PostgreSQL.

`backends.open_store` opens the store (`store.Store` on SQLite, `postgres.PostgresStore` on PostgreSQL) that holds
users, apps, hashed API keys and inputs; `server.create_app`/`server.running` serve it over HTTP;
`commands.destination` is its click CLI.
"""
