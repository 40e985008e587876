"""The fine-tuning time budget follows the machine: re-planned as training goes."""

from __future__ import annotations

from training.finetune import BUDGET_PROBE_STEPS, BudgetPlan


def run(plan: BudgetPlan, step_seconds: list[float]) -> int:
    """Steps done when each step takes the given time (a fake clock), as the loop runs."""
    now, step = plan.started, 0
    while step < plan.total:
        now += step_seconds[min(step, len(step_seconds) - 1)]
        step += 1
        plan.after_step(step, now)
    return step


def test_a_busy_start_does_not_cut_the_run_once_the_machine_is_quiet() -> None:
    """The first steps run 3x slower (a loaded machine); timing only those would plan a
    third of the run. Re-planning follows the faster steps and runs every planned step."""
    plan = BudgetPlan(planned=300, budget=330.0, warmup=0.1, started=0.0)
    slow_then_fast = [3.0] * 20 + [1.0] * 280  # 60 s + 280 s would not fit 330 s: nearly all
    done = run(plan, slow_then_fast)
    assert done >= 265 and plan.replans >= 2
    plan = BudgetPlan(planned=300, budget=400.0, warmup=0.1, started=0.0)
    assert run(plan, slow_then_fast) == 300 and not plan.cut_by_budget


def test_a_machine_that_slows_down_stops_within_the_budget() -> None:
    plan = BudgetPlan(planned=300, budget=200.0, warmup=0.1, started=0.0)
    fast_then_slow = [0.5] * 100 + [2.0] * 200
    done = run(plan, fast_then_slow)
    spent = 0.5 * min(done, 100) + 2.0 * max(0, done - 100)
    assert spent <= 200.0 + 2.0 * (BUDGET_PROBE_STEPS) and done < 300 and plan.cut_by_budget
    assert spent >= 200.0 - 2.0 * 5  # and it used the budget it had, not a third of it


def test_no_budget_runs_the_plan_and_warmup_never_exceeds_the_total() -> None:
    plan = BudgetPlan(planned=50, budget=None, warmup=0.1, started=0.0)
    assert run(plan, [10.0]) == 50 and plan.replans == 0
    tight = BudgetPlan(planned=1000, budget=12.0, warmup=0.1, started=0.0)
    run(tight, [1.0])
    assert tight.total <= 12 and 1 <= tight.warmup <= tight.total
