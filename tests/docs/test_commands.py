"""Every `collectors ...` command the docs show is one the `collectors` command accepts."""

from __future__ import annotations

import pytest

from tests.docs.shown import ROOT, Shown, commands_in, doc_files, problem


def shown_in_docs() -> list[Shown]:
    return [
        shown
        for path in doc_files()
        for shown in commands_in(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]


def test_every_command_in_the_docs_parses() -> None:
    reasons = ((shown, problem(shown.argv)) for shown in shown_in_docs())
    wrong = dict.fromkeys(f"{shown.where()}\n    {reason}" for shown, reason in reasons if reason)
    assert not wrong, "commands in the docs that `collectors` refuses:\n" + "\n".join(wrong)


def test_the_docs_show_commands_of_every_group() -> None:
    first_words = {shown.argv[0] for shown in shown_in_docs() if shown.argv}
    expected = {"kafka", "destination", "worker", "control", "apply", "stats", "dlq", "backfill", "tail", "demo"}
    assert expected <= first_words, f"not shown in any doc: {sorted(expected - first_words)}"


GOOD = """
Run `collectors stats --json` or `collectors kafka up|down|status`, and `collectors control <command>`.

```sh
# a comment
collectors dlq replay [--collector ID] [--config FILE] [--dry-run]
KEY=$(collectors destination key create demo --app training) && echo "$KEY"
docker compose exec -T destination collectors destination bootstrap demo training --key "$KEY"
kubectl -n collectors exec deploy/worker -- collectors stats --worker http://127.0.0.1:6066 | jq .
collectors delete ID... | --all [--workflows]
kubectl run collectors --image=collectors:latest
collectors tail predictions \\
    --from-beginning -n 10 --json > out.json
```

```console
$ collectors list --user demo --app training
id   status
collectors-output that is not a command
```

```yaml
collectors: []
```
"""


def test_synopsis_pipes_containers_and_continuations_are_read_as_commands() -> None:
    shown = commands_in(GOOD, "GOOD.md")
    lines = {entry.line for entry in shown}
    assert {2, 6, 7, 8, 9, 10, 12, 17} == lines
    assert ("tail", "predictions", "--from-beginning", "-n", "10", "--json") in {entry.argv for entry in shown}
    assert ("kafka", "status") in {entry.argv for entry in shown}
    assert [entry.where() for entry in shown if problem(entry.argv)] == []


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("```sh\ncollectors nosuch --json\n```", "no command `collectors nosuch`"),
        ("```bash\ncollectors dlq nosuch\n```", "no command `collectors dlq nosuch`"),
        ("```sh\ncollectors stats --nosuch-option\n```", "No such option: --nosuch-option"),
        ("```sh\ncollectors stats --broker\n```", "requires an argument"),
        ("```sh\ncollectors stats extra\n```", "unexpected extra arguments: extra"),
        ("See `collectors kafka up|sideways`.", "no command `collectors kafka sideways`"),
        ("| `collectors backfill --collector ID --since T` | x |", "No such option: --since"),
        ("```console\n$ docker compose exec worker collectors worker --no-such\n```", "No such option: --no-such"),
    ],
)
def test_a_wrong_command_or_option_is_named_with_its_line(doc: str, expected: str) -> None:
    shown = commands_in("intro\n\n" + doc, "docs/X.md")
    reasons = [f"{entry.where()} {problem(entry.argv)}" for entry in shown if problem(entry.argv)]
    assert len(reasons) == 1 and expected in reasons[0], reasons
    assert reasons[0].startswith("docs/X.md:")
