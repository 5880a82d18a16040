"""Training-step throughput: vitrine's fine-tuning step against a plain open_clip step.

Same model (random weights, same initial state), same batch, same precision
(bf16 autocast on a GPU, float32 on a CPU). On a GPU the model is ViT-B-32; on
a CPU a small ViT (`--model small`), so that many short rounds fit and the
comparison survives a busy machine. Ours: `finetune.step.ContrastiveStep`
(ClipLoss, AdamW with weight-decay groups, fused on a GPU, warm-up + cosine
schedule, temperature clamp). Reference: the loop open_clip's README shows
(forward, ClipLoss, zero_grad, backward, AdamW step). Rounds alternate between
the two so drift in machine load hits both alike; the ratio compares each
side's best round (the least disturbed), medians are reported too.

    .venv/bin/python benchmarks/finetune.py [--model ViT-B-32|small] [--batch N] [--rounds N]
"""

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import open_clip
import torch
from common import emit
from open_clip import ClipLoss
from open_clip.model import CLIP

from finetune.optim import build_optimizer, build_scheduler
from finetune.step import ContrastiveStep, autocast_for

Step = Callable[[torch.Tensor, torch.Tensor], object]

SMALL = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 96, "layers": 4, "width": 192, "patch_size": 16, "head_width": 64},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 4},
}


def reference_step(model: torch.nn.Module, device: torch.device, lr: float) -> Step:
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    loss_fn = ClipLoss()

    def step(images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
        with autocast_for(device):
            image_features, text_features, scale = model(images, texts)[:3]
            loss: torch.Tensor = loss_fn(image_features, text_features, scale)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def our_step(model: torch.nn.Module, device: torch.device, lr: float, total: int) -> Step:
    optimizer = build_optimizer(model, lr, 0.1, device)
    return ContrastiveStep(model, optimizer, build_scheduler(optimizer, 1, total), device)


def rate(
    step: Step, images: torch.Tensor, texts: torch.Tensor, steps: int, device: torch.device
) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step(images, texts)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * images.shape[0] / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="default: ViT-B-32 on a GPU, small on a CPU")
    parser.add_argument("--batch", type=int, default=0, help="default: 128 on a GPU, 8 on a CPU")
    parser.add_argument("--steps", type=int, default=0, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=0, help="default: 5 on a GPU, 15 on a CPU")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = device.type == "cuda"
    name = args.model or ("ViT-B-32" if gpu else "small")
    batch = args.batch or (128 if gpu else 32)
    steps = args.steps or (20 if gpu else 3)
    rounds = args.rounds or (5 if gpu else 15)
    torch.manual_seed(0)
    if name == "small":
        base = CLIP(**SMALL).to(device)  # type: ignore[arg-type]
    else:
        base = open_clip.create_model_and_transforms(name, pretrained=None, device=device)[0]
    size = (
        int(base.visual.image_size[0])
        if isinstance(base.visual.image_size, tuple | list)
        else int(base.visual.image_size)
    )
    tokenizer = open_clip.get_tokenizer("ViT-B-32" if name == "small" else name)
    images = torch.randn(batch, 3, size, size, device=device)
    texts = tokenizer([f"an engraving of item {n} in a book of emblems" for n in range(batch)]).to(
        device
    )
    ours_model, reference_model = copy.deepcopy(base).train(), copy.deepcopy(base).train()
    del base
    total = (rounds + 1) * (steps + 1)
    ours, reference = (
        our_step(ours_model, device, 1e-5, total),
        reference_step(reference_model, device, 1e-5),
    )
    rate(ours, images, texts, 2, device)  # warm-up: kernels, allocator, optimiser state
    rate(reference, images, texts, 2, device)
    ours_rates, reference_rates = [], []
    for _ in range(rounds):
        reference_rates.append(rate(reference, images, texts, steps, device))
        ours_rates.append(rate(ours, images, texts, steps, device))
    ours_best, reference_best = max(ours_rates), max(reference_rates)
    emit(
        {
            "benchmark": "finetune_step",
            "model": name,
            "device": device.type,
            "precision": "bf16-autocast" if device.type == "cuda" else "float32",
            "batch": batch,
            "steps_per_round": steps,
            "rounds": rounds,
            "ours_samples_per_s": round(ours_best, 2),
            "reference_samples_per_s": round(reference_best, 2),
            "ours_median_samples_per_s": round(statistics.median(ours_rates), 2),
            "reference_median_samples_per_s": round(statistics.median(reference_rates), 2),
            "ratio": round(ours_best / reference_best, 3),
        }
    )


if __name__ == "__main__":
    main()
