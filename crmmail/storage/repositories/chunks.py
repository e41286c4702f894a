"""Lists of keys cut to a size that one ``IN (...)`` takes on every backend."""

from collections.abc import Iterator, Sequence

IN_LIST_CHUNK = 500  # keys per ``IN (...)``: well inside every backend's parameter limit


def in_chunks(keys: Sequence[str]) -> Iterator[list[str]]:
    """The distinct ``keys``, in order, in lists of at most ``IN_LIST_CHUNK``.

    >>> [len(chunk) for chunk in in_chunks([str(n) for n in range(1200)] + ["0"])]
    [500, 500, 200]
    """
    distinct = list(dict.fromkeys(keys))
    for start in range(0, len(distinct), IN_LIST_CHUNK):
        yield distinct[start : start + IN_LIST_CHUNK]
