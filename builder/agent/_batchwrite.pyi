from typing import Any

def write_files(
    batch: tuple[tuple[bytes, int, tuple[Any, ...], bytes | None], ...], /
) -> list[tuple[int, int, int, int]]: ...
