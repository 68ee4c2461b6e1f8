"""Decision time of the enforcer: 10 rules, local counters, per call (decide + settle).

Run:  .venv/bin/python benchmarks/enforcement.py
Target (issue #4): < 20 us per call for 10 rules with local counters.
"""

from __future__ import annotations

import statistics
import time
from decimal import Decimal

from tokenid.enforce import CallSpec, Enforcer, LocalCounters, parse_config
from tokenid.pricing import Pricer, parse_deployments

DEPLOYMENTS = parse_deployments({"gpt-4o": {"model": "gpt-4o", "version": "2024-08-06"},
                                 "gpt-4o-mini": {"model": "gpt-4o-mini", "version": "2024-07-18"}})
RULES = {
    "counters": "local",
    "budgets": [
        {"name": "session-day", "scope": "session", "limit_usd": "1000", "window": "day"},
        {"name": "team-month", "scope": "tag:team", "limit_usd": "5000", "window": "month"},
        {"name": "global-hour", "scope": "global", "limit_tokens": 10**12, "window": "hour"},
        {"name": "deployment", "scope": "deployment", "limit_usd": "10000", "window": "rolling:30m"},
    ],
    "model_ceiling": {"max_model": "gpt-4o", "target": "gpt-4o-mini"},
    "routes": [{"name": "free", "when": {"tags": {"tier": "free"}}, "to": "gpt-4o-mini"},
               {"name": "tools", "when": {"has_tools": True}, "to": "gpt-4o"}],
    "rate_limits": [{"name": "rpm", "scope": "session", "requests_per_minute": 10**9}],
    "max_tokens": 4000,
    "deny": {"endpoints": ["images.generate"]},
}


def main() -> None:
    config = parse_config(RULES)
    enforcer = Enforcer(config, pricer=Pricer(deployments=DEPLOYMENTS), azure=True, deployments=DEPLOYMENTS,
                        counters=LocalCounters())
    spec = CallSpec(provider="azure_openai", endpoint="chat.completions", model="gpt-4o", session_id="s-1",
                    tags={"team": "search", "tier": "paid"},
                    body={"model": "gpt-4o", "max_tokens": 300,
                          "messages": [{"role": "user", "content": "How much did this cost? " * 8}]})
    rules = len(config.budgets) + 1 + len(config.routes) + len(config.rate_limits) + 1 + 1
    for _ in range(2000):
        enforcer.settle(enforcer.decide(spec), tokens=400, cost_usd=Decimal("0.004"), failed=False)
    rounds = []
    for _ in range(7):
        n = 20000
        t = time.perf_counter()
        for _ in range(n):
            enforcer.settle(enforcer.decide(spec), tokens=400, cost_usd=Decimal("0.004"), failed=False)
        rounds.append((time.perf_counter() - t) / n)
    print(f"enforcement decide+settle: {statistics.median(rounds) * 1e6:.1f} us per call with {rules} rules, "
          f"local counters (target < 20 us)")


if __name__ == "__main__":
    main()
