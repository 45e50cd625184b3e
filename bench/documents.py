"""How long documents take: HTML from the template, then PDF from the HTML (WeasyPrint).

The sales pack with its demo data is served in-process (a temporary SQLite file); a sales
rep renders the demo quote (one page) and the demo contract (two to three pages). Timed:

* import: loading WeasyPrint and Pango (once per process);
* first:  the first PDF of the process (fontconfig and the CJK fonts are read);
* html:   `GET …/documents/quote.html` through the API (record read, template rendered);
* pdf:    laying out the HTML as PDF (the in-memory cache bypassed), quote and contract;
* cached: `GET …/documents/quote.pdf` when the same PDF was made a moment ago.

It prints the median of `--rounds` runs of each, in milliseconds (wall clock, and the
process's CPU time, which other work on the machine moves less), and the load average.

    .venv/bin/python bench/documents.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from fastapi.testclient import TestClient
from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.boot import start
from runtime.documents.render import pdf
from runtime.seed import demo_file, seed_demo, seed_users
from tests.support import SALES, user_token


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="formloom-bench-"))
    runtime = start([SALES], f"sqlite:///{folder}/bench.db", folder / "files")
    people, data = demo_file(SALES, "users.yaml"), demo_file(SALES)
    assert people is not None and data is not None
    seed_users(runtime.service, people)
    seed_demo(runtime.service, "sales", data)
    client = TestClient(
        runtime.api, headers={"Authorization": f"Bearer {user_token(runtime.engine, 'li.rep', ())}"}
    )
    quote = client.get("/api/v1/sales/quote/1/documents/quote.html")
    contract = client.get("/api/v1/sales/contract/1/documents/contract.html")
    assert quote.status_code == contract.status_code == 200, (quote.text, contract.text)

    started = time.perf_counter()
    import weasyprint  # noqa: F401  (what the first PDF of a process pays for)

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"import WeasyPrint     {1000 * (time.perf_counter() - started):8.0f} ms")
    print(f"first PDF (quote)     {_once(lambda: pdf.__wrapped__(quote.text)):8.0f} ms")
    rows = [
        ("HTML of the quote", lambda: client.get("/api/v1/sales/quote/1/documents/quote.html")),
        ("PDF of the quote", lambda: pdf.__wrapped__(quote.text)),
        ("PDF of the contract", lambda: pdf.__wrapped__(contract.text)),
        ("quote.pdf, cached", lambda: client.get("/api/v1/sales/quote/1/documents/quote.pdf")),
    ]
    for label, run in rows:
        cpu = [_cpu(run) for _ in range(args.rounds)]
        times = [_once(run) for _ in range(args.rounds)]
        print(
            f"{label:<21} {statistics.median(times):8.0f} ms  (min {min(times):.0f}, max {max(times):.0f}); "
            f"CPU {statistics.median(cpu):.0f} ms"
        )
    pages = {
        name: len(PdfReader(BytesIO(pdf(got.text))).pages)
        for name, got in (("quote", quote), ("contract", contract))
    }
    print(f"pages: {pages}; load average {os.getloadavg()[0]:.2f}")
    runtime.engine.dispose()
    return 0


def _cpu(run: Callable[[], object]) -> float:
    """The process's CPU time for one run, in ms: what the run costs whatever else the machine does."""
    started = time.process_time()
    run()
    return 1000 * (time.process_time() - started)


def _once(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return 1000 * (time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main())
