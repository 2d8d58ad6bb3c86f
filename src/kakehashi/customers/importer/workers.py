"""Parsing in worker processes while the main process writes."""

from __future__ import annotations

import multiprocessing
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing.context import BaseContext

from kakehashi.customers.importer.parsing import ParsedRow, RowParser
from kakehashi.customers.importer.reading import Cell

# Parsing in worker processes: phonenumbers costs ~100-130 µs per number on a small server, far
# more than the database work per row, and it is pure Python (GIL-bound), so it scales by process.
#: Files with fewer rows than this are parsed in-process (starting workers costs about a second).
POOL_MIN_ROWS = 20_000
_worker_parser: RowParser | None = None


def _init_worker(parser: RowParser) -> None:
    global _worker_parser
    _worker_parser = parser


def _parse_in_worker(chunk: list[tuple[int, Sequence[Cell]]]) -> list[ParsedRow]:
    assert _worker_parser is not None, "worker not initialized"
    return _worker_parser.parse_many(chunk)


def _ping() -> None:
    return None


@contextmanager
def parse_stage(
    parser: RowParser, workers: int
) -> Iterator[Callable[[Iterator[list[tuple[int, Sequence[Cell]]]]], Iterator[list[ParsedRow]]]]:
    """A function from chunks to parsed batches, in file order.

    With ``workers`` ≥ 1 the batches are parsed ahead in that many processes while the caller
    writes (at most two batches per worker in flight: memory stays bounded on any file size).
    Enter it before starting any thread: a single-threaded process forks its workers at once;
    otherwise they come from a forkserver (forking a threaded process can deadlock; the
    forkserver costs about a second to import the code).
    """
    if workers < 1:
        yield lambda chunks: (parser.parse_many(chunk) for chunk in chunks)
        return
    ctx: BaseContext
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("fork")
    else:
        server = multiprocessing.get_context("forkserver")
        server.set_forkserver_preload([__name__])
        ctx = server
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(parser,)) as pool:
        pool.submit(_ping).result()  # start the workers now, before the caller starts threads

        def parse(chunks: Iterator[list[tuple[int, Sequence[Cell]]]]) -> Iterator[list[ParsedRow]]:
            pending: deque[Future[list[ParsedRow]]] = deque()
            for chunk in chunks:
                pending.append(pool.submit(_parse_in_worker, chunk))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

        yield parse
