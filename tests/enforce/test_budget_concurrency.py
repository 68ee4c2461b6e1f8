"""One budget hammered through the real client by 16 threads and by 4 processes: spend never passes the limit
by more than one call's reservation (with reservations settled to true cost, it does not pass it at all)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenid import BudgetExceeded, Journal

from conftest import API_KEY, DEPLOYMENTS, make_client

LIMIT = Decimal("0.02")
CONFIG = {"counters": "sqlite",
          "budgets": [{"name": "shared", "scope": "global", "limit_usd": str(LIMIT), "window": "day"}]}
MSG = [{"role": "user", "content": "Write a short line about budgets"}]


def _spent(journal: Journal) -> tuple[Decimal, int, int]:
    journal.flush()
    events = journal.events()
    ok = [e for e in events if e["status"] == "ok"]
    return (sum((Decimal(e["cost_usd"]) for e in ok), Decimal(0)), len(ok),
            sum(e["status"] == "blocked" for e in events))


def test_sixteen_threads(sim: Any, journal: Journal) -> None:
    client = make_client("azure", sim, journal, enforcement_config=CONFIG)

    def worker() -> None:
        try:
            for _ in range(400):
                client.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=60)
        except BudgetExceeded:
            return

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    client.close()
    spent, ok, blocked = _spent(journal)
    print(f"16 threads: {ok} calls, spent {spent} of {LIMIT}, overshoot {max(Decimal(0), spent - LIMIT)}")
    assert ok > 20 and blocked >= 16
    assert spent <= LIMIT


WORKER = textwrap.dedent("""
    import sys
    from tokenid import BudgetExceeded, JournaledAzureOpenAI
    client = JournaledAzureOpenAI(azure_endpoint=sys.argv[1], api_key={key!r}, api_version="2024-10-21",
                                  journal=sys.argv[2], deployments={deployments!r}, enforcement_config={config!r},
                                  max_retries=0)
    try:
        for _ in range(400):
            client.chat.completions.create(model="gpt-4o", messages={msg!r}, max_tokens=60)
    except BudgetExceeded:
        pass
    client.close()
""")


def test_four_processes(sim: Any, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(key=API_KEY, deployments=DEPLOYMENTS, config=CONFIG, msg=MSG))
    db = tmp_path / "shared.db"
    Journal(db).close()  # create the schema once, as an installed app would have
    procs = [subprocess.Popen([sys.executable, str(script), sim.azure_endpoint, str(db)]) for _ in range(4)]
    assert [p.wait(180) for p in procs] == [0, 0, 0, 0]
    spent, ok, blocked = _spent(Journal(db))
    print(f"4 processes: {ok} calls, spent {spent} of {LIMIT}, overshoot {max(Decimal(0), spent - LIMIT)}")
    assert ok > 20 and blocked == 4
    assert spent <= LIMIT
