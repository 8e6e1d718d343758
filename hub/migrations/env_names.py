"""What schema comparisons leave out: tables the migrations make by hand,
outside ``hub.store.schema`` (SQLite's full-text index and its shadow tables)."""


def include_name(name, type_, parent_names) -> bool:
    return not (type_ == "table" and name and name.startswith("messages_fts"))
