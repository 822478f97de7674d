"""Temperature's effect on the simulator is plain and monotonic, for any prompt and seed.

Measured as `Comparison.variation()` measures it (`analysis.variation_of`, 3 repeats),
on the pictures the simulator draws for independent calls.
"""

from __future__ import annotations

import itertools
import random

import pytest

from mai_image_nb.analysis import variation_of
from mai_image_nb.offline.render import render_image

PROMPTS = (
    "a red fox in the snow",
    "a lighthouse at sunset by the sea",
    "a city at night",
    "a cat",
    "a house in a forest",
    "a blue whale",
)
SEEDS = (1, 2, 3)
REPEATS = 3


def measured(prompt: str, temperature: float, rng: random.Random, ratio: str = "1:1") -> float:
    images = [
        render_image(
            prompt,
            ratio,
            temperature,
            variation=rng.getrandbits(63) if temperature else 0,
            scale=0.125,
        )
        for _ in range(REPEATS)
    ]
    return variation_of(images)


@pytest.mark.parametrize("ratio", ["1:1", "16:9", "9:16"])
@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("seed", SEEDS)
def test_variation_is_zero_at_0_clear_at_0_5_and_doubles_from_0_7_to_2(
    prompt: str, seed: int, ratio: str
) -> None:
    rng = random.Random(seed)
    v = {t: measured(prompt, t, rng, ratio) for t in (0.0, 0.5, 0.7, 2.0)}
    assert v[0.0] == 0
    assert v[0.5] > 0.005, v
    assert v[2.0] >= 2 * v[0.7], v


def test_the_mean_over_prompts_grows_with_every_step_of_temperature() -> None:
    rng = random.Random(7)
    temperatures = (0.0, 0.5, 1.0, 1.5, 2.0)
    means = [sum(measured(p, t, rng) for p in PROMPTS) / len(PROMPTS) for t in temperatures]
    assert means[0] == 0
    assert all(a < b for a, b in itertools.pairwise(means)), means
