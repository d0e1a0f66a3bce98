"""The management API (/manage/*): projects, tokens, audit log, cache purge; Bearer MANAGEMENT_TOKEN.

`wire` holds the pydantic models of bodies, queries and answers; `handlers` what each operation does;
`routes` the one table of operations and the Starlette app built from it; `openapi` the document
generated from that table and the models. Every change is audited through the event bus as its own action.
"""
