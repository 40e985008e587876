"""Fine-tune the sentence encoder end to end on the team's labels (`--finetune`).

Frozen MiniLM embeddings under a linear head stop well short of what a task like issue
classification needs: the embedding space was never told which differences matter here.
This trains the transformer itself, with a category and a severity head on its pooled
output (mean pooling and L2 normalisation, exactly as `MiniLMEncoder.encode` does, so
inference sees the space that was trained), with AdamW, warm-up then linear decay, and
mixed precision on CUDA (bf16 where supported, else fp16 with a gradient scaler).

The classification heads are scaffolding: afterwards `fit_candidate` fits the production
heads (prior + dense + TF-IDF n-grams) on the tuned embeddings, so what is scored, saved
and served is the product's engine with the tuned encoder inside. The tuned weights are
rounded to fp16 before that fit, so the trainer scores exactly what every bot will load.
torch is imported lazily: `triage-bot --help` and heads-only training never pay for it here.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from core.backends import bundle
from core.backends.embedded import MiniLMEncoder
from core.models import FeedbackItem, Label
from core.ports import Encoder
from core.runtime import RuntimeSettings
from core.taxonomy import Taxonomy
from core.triage import TriageEngine, encoder_text
from training.candidate import fit_candidate

Example = tuple[FeedbackItem, Label]
Progress = Callable[[str, int, int], None]  # (what, done, total)

# Pooled embeddings have unit length, so raw dot products are in [-1, 1]: a fixed logit
# scale (a softmax temperature, as in cosine classifiers) lets the heads reach confident
# probabilities without large weights.
LOGIT_SCALE = 20.0
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class FinetuneConfig:
    """How to fine-tune; recorded in the model registry next to the weights."""

    device: str = "cpu"
    epochs: int = 3
    batch_size: int = 16
    max_length: int = 128  # tokens per text while training (inference keeps the encoder's)
    lr: float = 5e-5  # the transformer's peak learning rate
    head_lr: float = 2e-3  # the classification heads start from scratch: larger steps
    weight_decay: float = 0.01
    warmup: float = 0.1  # share of the steps with a rising learning rate
    precision: str = "auto"  # auto: bf16 (else fp16) on CUDA, fp32 on the CPU
    severity_weight: float = 0.5  # the promotion gate reads the category: it leads the loss
    # Fewer training examples than this: heads only (a few hundred labels are where tuning
    # the encoder starts to pay; below, it mostly overfits). 0 = always fine-tune.
    min_examples: int = 0
    # Seconds the fine-tuning loop may take (None: no limit). The step time is measured as
    # training goes and the plan re-fitted every few steps (`BudgetPlan`), with the
    # learning-rate schedule rescaled to match: a growing store keeps `train` within the
    # time a team allots it, and a machine that is busy for a while does not cut it short.
    time_budget: float | None = None

    def applies(self, examples: int) -> bool:
        """Whether to fine-tune on this many training examples."""
        return examples >= self.min_examples

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("--epochs and --batch-size must be at least 1")
        if not 8 <= self.max_length <= 512:
            raise ValueError("--max-length must be between 8 and 512 tokens")
        if self.lr <= 0 or self.head_lr <= 0:
            raise ValueError("learning rates must be positive")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise ValueError("--time-budget must be positive minutes (0: no limit)")
        if self.min_examples < 0:
            raise ValueError("min_examples must be at least 0")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FinetuneReport:
    """What a fine-tuning run did: shown by the CLI and kept in the model's config."""

    steps: int
    planned_steps: int  # epochs x batches; more than `steps` when the time budget cut it
    epochs_done: float
    seconds: float
    budget_seconds: float | None  # the time budget it ran under (None: no limit)
    stopped_by: str  # "plan" (every planned step ran) or "time budget"
    replans: int  # how often the step estimate changed the plan
    loss: float  # mean training loss over the last epoch
    device: str
    precision: str  # what the forward passes ran in
    weights_sha256: str  # of the fp16 encoder weights the model carries

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


BUDGET_PROBE_STEPS = 6  # steps timed before the plan is first fitted to the time budget
REPLAN_EVERY = 5  # steps between re-estimates of the step time
STEP_WINDOW = 30  # steps the estimate averages over: recent enough to follow the machine


class BudgetPlan:
    """How many steps fit the time budget, re-estimated as training goes.

    The step time is averaged over the last `STEP_WINDOW` steps and the plan re-fitted every
    `REPLAN_EVERY` steps: it shrinks while the machine is slow and grows back (never past
    the planned epochs) when it speeds up, and training stops early only when the steps left
    in the budget are spent. The learning-rate schedule reads `total`, so it still decays to
    zero at the last step that will run.
    """

    def __init__(self, planned: int, budget: float | None, warmup: float, started: float) -> None:
        self.planned = planned
        self.budget = budget
        self.total = planned
        self.warmup = max(1, int(warmup * planned))
        self.warmup_share = warmup
        self.started = started
        self.replans = 0
        self._marks: deque[tuple[int, float]] = deque(maxlen=STEP_WINDOW + 1)

    def after_step(self, step: int, now: float) -> None:
        """Record that `step` steps are done at `now`; re-fit the plan when it is time."""
        if step == 1:  # the first step pays one-off costs: time the ones after it
            self._marks.clear()
        self._marks.append((step, now))
        if self.budget is None or step < BUDGET_PROBE_STEPS:
            return
        due = step == BUDGET_PROBE_STEPS or step % REPLAN_EVERY == 0 or step >= self.total
        if not due:
            return
        (first, then), (last, at) = self._marks[0], self._marks[-1]
        if last <= first:
            return
        per_step = (at - then) / (last - first)
        left = self.budget - (now - self.started)
        affordable = step + (int(left / per_step) if per_step > 0 else self.planned)
        total = max(step, min(self.planned, affordable))
        if total != self.total:
            self.total = total
            self.warmup = min(self.warmup, max(1, int(self.warmup_share * total)))
            self.replans += 1

    @property
    def cut_by_budget(self) -> bool:
        return self.total < self.planned


def check_device(name: str) -> str:
    """The torch device for `name`, refusing CUDA where there is none (one clear line
    instead of a stack trace from deep inside the first step)."""
    import torch

    if name == "cpu":
        return name
    if not name.startswith("cuda"):
        raise ValueError(f"--device {name!r}: use cpu or cuda (or cuda:N)")
    if not torch.cuda.is_available():
        build = torch.version.cuda or "none: a CPU-only build"
        raise ValueError(
            f"--device {name}: no CUDA device available (torch {torch.__version__}, CUDA {build})"
        )
    return name


def _autocast(precision: str, device: str) -> tuple[Any, bool]:
    """(autocast dtype or None, whether a gradient scaler is needed)."""
    import torch

    cuda = device.startswith("cuda")
    if precision == "fp32" or (precision == "auto" and not cuda):
        return None, False
    if precision == "fp16" or (precision == "auto" and not torch.cuda.is_bf16_supported()):
        if not cuda:
            raise ValueError("--precision fp16 needs CUDA; on the CPU use bf16 or fp32")
        return torch.float16, True
    return torch.bfloat16, False


def pooled(transformer: Any, batch: Mapping[str, Any]) -> Any:
    """Mean of the token vectors over the attention mask, L2-normalised: the encoder's
    Pooling + Normalize modules, in fp32 whatever the autocast dtype."""
    import torch

    hidden = transformer(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).last_hidden_state.float()
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(mean, p=2, dim=1)


def finetune_encoder(
    examples: Sequence[Example],
    taxonomy: Taxonomy,
    encoder: Encoder,
    config: FinetuneConfig,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    runtime: RuntimeSettings | None = None,
) -> tuple[MiniLMEncoder, FinetuneReport]:
    """A fine-tuned copy of `encoder` (the one given is not touched), on `config.device`."""
    import torch

    if not isinstance(encoder, MiniLMEncoder):
        raise ValueError(f"fine-tuning needs the MiniLM encoder, not {type(encoder).__name__}")
    if not examples:
        raise ValueError("no labelled examples to fine-tune on")
    device = check_device(config.device)
    dtype, scaled = _autocast(config.precision, device)
    started = time.perf_counter()
    torch.manual_seed(seed)
    tuned = encoder.fork(device=device)
    transformer, tokenizer = tuned.transformer, tuned.tokenizer
    texts = [encoder_text(item, runtime or RuntimeSettings()) for item, _ in examples]
    cats, sevs = taxonomy.category_names, taxonomy.severity_names
    y_cat = torch.tensor([cats.index(label.category) for _, label in examples], device=device)
    y_sev = torch.tensor([sevs.index(label.severity) for _, label in examples], device=device)
    heads = torch.nn.ModuleDict(
        {
            "category": torch.nn.Linear(encoder.dim, len(cats)),
            "severity": torch.nn.Linear(encoder.dim, len(sevs)),
        }
    ).to(device)

    def decays(name: str) -> bool:
        return not (name.endswith("bias") or "LayerNorm" in name)

    named = list(transformer.named_parameters())
    groups: list[dict[str, Any]] = [
        {"params": [p for n, p in named if decays(n)], "weight_decay": config.weight_decay},
        {"params": [p for n, p in named if not decays(n)], "weight_decay": 0.0},
        {"params": list(heads.parameters()), "lr": config.head_lr, "weight_decay": 0.0},
    ]
    try:  # fused: one kernel for all 22M weights, ~20x faster than the per-tensor loop on a CPU
        optimiser = torch.optim.AdamW(groups, lr=config.lr, fused=True)
    except (RuntimeError, TypeError):  # an older torch or a device without the fused kernel
        optimiser = torch.optim.AdamW(groups, lr=config.lr)
    per_epoch = math.ceil(len(texts) / config.batch_size)
    planned = config.epochs * per_epoch
    plan = BudgetPlan(planned, config.time_budget, config.warmup, time.perf_counter())

    def schedule(step: int) -> float:
        total, warmup = plan.total, plan.warmup
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, schedule)
    params = [p for group in groups for p in group["params"]]
    scaler = torch.amp.GradScaler("cuda") if scaled else None
    functional = torch.nn.functional
    generator = torch.Generator().manual_seed(seed)
    transformer.train()
    step, epoch_loss = 0, 0.0
    for epoch in range(config.epochs):
        order = torch.randperm(len(texts), generator=generator).tolist()
        losses: list[Any] = []
        for start in range(0, len(order), config.batch_size):
            if step >= plan.total:
                break
            rows = order[start : start + config.batch_size]
            batch = tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=config.max_length,
                return_tensors="pt",
            ).to(device)
            index = torch.tensor(rows, device=device)
            with torch.autocast(
                device.split(":")[0], dtype=dtype or torch.float32, enabled=dtype is not None
            ):
                embedding = LOGIT_SCALE * pooled(transformer, batch)
                loss = functional.cross_entropy(
                    heads["category"](embedding).float(), y_cat[index]
                ) + config.severity_weight * functional.cross_entropy(
                    heads["severity"](embedding).float(), y_sev[index]
                )
            optimiser.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimiser)
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                scaler.step(optimiser)
                scaler.update()
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimiser.step()
            scheduler.step()
            losses.append(loss.detach())
            step += 1
            plan.after_step(step, time.perf_counter())
            if progress:
                progress(f"fine-tuning, epoch {epoch + 1}/{config.epochs}", step, plan.total)
        if losses:
            epoch_loss = float(torch.stack(losses).mean())  # one device sync per epoch
        if step >= plan.total:
            break
    transformer.eval()
    state = bundle.half(transformer.state_dict())
    tuned.load_weights(state)  # the fp16-rounded weights: what a bot will load
    report = FinetuneReport(
        steps=step,
        planned_steps=planned,
        epochs_done=round(step / per_epoch, 2),
        seconds=round(time.perf_counter() - started, 2),
        budget_seconds=config.time_budget,
        stopped_by="time budget" if step < planned else "plan",
        replans=plan.replans,
        loss=round(epoch_loss, 4),
        device=device,
        precision=str(dtype).removeprefix("torch.") if dtype is not None else "fp32",
        weights_sha256=bundle.digest(state),
    )
    return tuned, report


def fit_finetuned(
    training: Sequence[Example],
    taxonomy: Taxonomy,
    encoder: Encoder,
    config: FinetuneConfig,
    *,
    steps: int = 300,
    seed: int = 0,
    progress: Progress | None = None,
    runtime: RuntimeSettings | None = None,
) -> tuple[TriageEngine, FinetuneReport]:
    """Fine-tune the encoder, then fit the production heads on its embeddings: the
    candidate `train --finetune` gates and saves, and `eval --finetune` measures."""
    tuned, report = finetune_encoder(
        training, taxonomy, encoder, config, seed=seed, progress=progress, runtime=runtime
    )

    def heads(done: int, total: int) -> None:
        if progress:
            progress("training heads", done, total)

    candidate = fit_candidate(
        training, taxonomy, tuned, steps=steps, seed=seed, progress=heads, runtime=runtime
    )
    return candidate, report
