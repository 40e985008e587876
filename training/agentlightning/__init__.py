"""Agent Lightning (agentlightning 1.0.2, Python >= 3.12): RL on the team's validations.

- `rollouts`: validated items as the rollout inputs the VERL trainer consumes
  (`triage-bot export --format agentlightning`).
- `agent`: the class `agl-controller` runs per rollout (`agent:TriageAgent`).
- `launch`: `triage-bot train --algo grpo` (agl-server, agl-controller, verl's GRPO).

agentlightning is imported lazily, inside functions: the core package never needs it.
"""
