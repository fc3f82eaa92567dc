"""Training objective (causal LM or masked LM), token accuracy, evaluation and the learning-rate schedule.

Public API:
    loss_and_accuracy(model, batch, family: str, mlm_probability: float, generator: torch.Generator | None,
                      pad_id: int, mask_id: int) -> (loss: Tensor, correct: Tensor (int), count: int)
    lr_at(step: int, total_steps: int, train_cfg) -> float
    warmup_steps(total_steps: int, train_cfg) -> int
    step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator    # masking RNG of one step
    evaluate_windows(model, windows, family, mlm_probability, pad_id, mask_id, batch_size=8,
                     max_windows=EVAL_MAX_WINDOWS, seed=EVAL_SEED, device=None, autocast=None)
        -> {"loss", "perplexity", "accuracy"}                    # one process
    eval_sums(model, windows, family, mlm_probability, pad_id, mask_id, batch_size=8, seed=EVAL_SEED,
              first_index=0, device=None, autocast=None) -> (loss_sum: float, correct: int, count: int)
    metrics_from_sums(loss_sum, correct, count) -> {"loss", "perplexity", "accuracy"}   # after all-reduce

batch is a LongTensor [B, L+1] of windows.
- causal (llama): the whole window is the input with labels = input ids (the model shifts them), so L
  tokens are predicted; accuracy = argmax of the logits equals the next token, over those L positions.
- masked (bert): the input is the window's first L tokens. Each non-pad position is chosen with
  probability mlm_probability (at least one per batch); of the chosen, 80% become mask_id, 10% a
  uniformly random id of the vocabulary, 10% stay unchanged (BERT). Labels are -100 except at the
  chosen positions; accuracy = argmax equals the original token, over the chosen positions.
  The random draws come from `generator` on the CPU (shape-only: three tensors of [B, L] drawn in a
  fixed order), so the same generator state gives the same masks on any device; train.py seeds one per
  step with step_generator(seed, step, rank), which makes a resumed run mask exactly like an
  uninterrupted one. generator=None uses torch's global RNG.
loss is the mean over the predicted positions (what the model returns), correct the number of
right argmax predictions and count the number of predicted positions.
"""

import math

import torch

EVAL_MAX_WINDOWS = 512  # evaluation uses at most the first 512 validation windows
EVAL_SEED = 20240101  # masks of evaluation (masked LM) are drawn from (this seed, window index)


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """CPU generator for the masking of one (1-based) step on one rank; independent of anything else."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 65_537 + rank * 7_919 + 17) % 2**63)


def _mask_draws(shape, vocab_size: int, generator) -> tuple:
    """(select u [B,L], kind u [B,L], random ids [B,L]) drawn in a fixed order from the generator."""
    select = torch.rand(shape, generator=generator)
    kind = torch.rand(shape, generator=generator)
    random_ids = torch.randint(vocab_size, shape, generator=generator)
    return select, kind, random_ids


def _masked_inputs(tokens, draws, mlm_probability: float, pad_id: int, mask_id: int):
    """(input_ids, labels, chosen) for BERT masking of tokens [B, L] with precomputed CPU draws."""
    select, kind, random_ids = (d.to(tokens.device) for d in draws)
    maskable = tokens != pad_id
    chosen = (select < mlm_probability) & maskable  # [B, L] bool
    if not bool(chosen.any()):  # keep the loss defined: choose the maskable position with the lowest draw
        flat = torch.where(maskable, select, torch.full_like(select, 2.0)).flatten().argmin()
        chosen = chosen.flatten().index_fill(0, flat, True).view_as(chosen)
    inputs = tokens.clone()
    to_mask = chosen & (kind < 0.8)
    to_random = chosen & (kind >= 0.8) & (kind < 0.9)  # the remaining 10% keep their token
    inputs[to_mask] = mask_id
    inputs[to_random] = random_ids[to_random]
    labels = torch.where(chosen, tokens, torch.full_like(tokens, -100))
    return inputs, labels, chosen


def _vocab_size(model) -> int:
    return model.config.vocab_size


def _masked_forward(model, tokens, draws, mlm_probability, pad_id, mask_id):
    inputs, labels, chosen = _masked_inputs(tokens, draws, mlm_probability, pad_id, mask_id)
    out = model(input_ids=inputs, labels=labels)  # logits [B, L, V]
    pred = out.logits.argmax(-1)  # [B, L]
    correct = (pred[chosen] == tokens[chosen]).sum()
    return out.loss, correct, int(chosen.sum().item())


def loss_and_accuracy(
    model, batch, family: str, mlm_probability: float, generator, pad_id: int, mask_id: int
):
    """Loss, number of correct predictions (int tensor) and number of predicted positions of one batch."""
    if family == "causal":
        # use_cache=False: no key/value cache while training (it would also recompile compiled layers)
        out = model(input_ids=batch, labels=batch, use_cache=False)  # logits [B, L+1, V]
        pred = out.logits[:, :-1].argmax(-1)  # [B, L]
        correct = (pred == batch[:, 1:]).sum()
        return out.loss, correct, pred.numel()
    if family != "masked":
        raise ValueError(f"family must be 'causal' or 'masked', got {family!r}")
    tokens = batch[:, :-1]  # [B, L]
    draws = _mask_draws(tuple(tokens.shape), _vocab_size(model), generator)
    return _masked_forward(model, tokens, draws, mlm_probability, pad_id, mask_id)


def _eval_draws(first_index: int, n: int, length: int, vocab_size: int, seed: int) -> tuple:
    """Mask draws of windows first_index..first_index+n-1, each from its own generator (seed, index)."""
    per_window = [
        _mask_draws(
            (1, length), vocab_size, torch.Generator().manual_seed(seed * 1_000_003 + first_index + j)
        )
        for j in range(n)
    ]
    return tuple(torch.cat(parts) for parts in zip(*per_window, strict=True))


def eval_sums(
    model,
    windows,
    family: str,
    mlm_probability: float,
    pad_id: int,
    mask_id: int,
    batch_size: int = 8,
    seed: int = EVAL_SEED,
    first_index: int = 0,
    device=None,
    autocast=None,
) -> tuple[float, int, int]:
    """(loss sum, correct, count) over all `windows` (no_grad, eval mode, training mode restored).

    loss sum = sum over batches of mean loss x predicted positions. Masks (masked LM) of window i are
    drawn from (seed, first_index + i) only, so shards of one set evaluated on different ranks with
    their first_index, summed (all-reduce), give the same result as one process over the whole set.
    """
    import contextlib

    was_training = model.training
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    try:
        with torch.no_grad():
            for i in range(0, len(windows), batch_size):
                batch = windows[i : i + batch_size]
                if device is not None:
                    batch = batch.to(device)
                with autocast() if autocast else contextlib.nullcontext():
                    if family == "masked":
                        tokens = batch[:, :-1]
                        draws = _eval_draws(
                            first_index + i, len(batch), tokens.shape[1], _vocab_size(model), seed
                        )
                        loss, c, n = _masked_forward(model, tokens, draws, mlm_probability, pad_id, mask_id)
                    else:
                        loss, c, n = loss_and_accuracy(
                            model, batch, family, mlm_probability, None, pad_id, mask_id
                        )
                loss_sum += loss.float().item() * n
                correct += int(c.item())
                count += n
    finally:
        model.train(was_training)
    return loss_sum, correct, count


def metrics_from_sums(loss_sum: float, correct: int, count: int) -> dict:
    """{"loss", "perplexity", "accuracy"} of eval_sums() results (summed over ranks)."""
    loss = loss_sum / count
    return dict(loss=loss, perplexity=math.exp(min(loss, 700.0)), accuracy=correct / count)


def evaluate_windows(
    model,
    windows,
    family: str,
    mlm_probability: float,
    pad_id: int,
    mask_id: int,
    batch_size: int = 8,
    max_windows: int = EVAL_MAX_WINDOWS,
    seed: int = EVAL_SEED,
    device=None,
    autocast=None,
) -> dict:
    """Loss (mean over predicted positions), perplexity and token accuracy over the first max_windows
    windows (0 = all), in one process. Independent of batch_size and device up to float rounding."""
    if max_windows:
        windows = windows[:max_windows]
    if len(windows) == 0:
        raise ValueError("no windows to evaluate")
    sums = eval_sums(
        model, windows, family, mlm_probability, pad_id, mask_id, batch_size, seed, 0, device, autocast
    )
    return metrics_from_sums(*sums)


def warmup_steps(total_steps: int, train_cfg) -> int:
    """train.warmup, or for -1 (auto) 10% of the steps, at least 1 and at most 100."""
    if train_cfg.warmup >= 0:
        return train_cfg.warmup
    return min(100, max(1, total_steps // 10))


def lr_at(step: int, total_steps: int, train_cfg) -> float:
    """Learning rate of 1-based `step`: linear warmup to learning_rate over warmup_steps(), then
    cosine: half-cosine decay to 10% of learning_rate at the last step; linear: straight line to 10%
    at the last step; constant: learning_rate."""
    base = train_cfg.learning_rate
    warmup = warmup_steps(total_steps, train_cfg)
    if warmup and step <= warmup:
        return base * step / warmup
    if train_cfg.schedule == "constant":
        return base
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    if train_cfg.schedule == "linear":
        return base * (1.0 - 0.9 * progress)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
