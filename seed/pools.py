"""Value pools built once from Faker's en_US data, then drawn from with ``random.Random``.

Calling Faker per patient costs ~100 µs per street name; drawing from a precomputed pool costs
well under 1 µs. Names use Faker's own frequency tables (first names by sex, last names), streets
and cities come from a Faker instance seeded with a constant, so pools are identical on every run
with the same Faker version (recorded in the population summary).
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass
from functools import cache

import faker
from faker.providers.address.en_US import Provider as AddressProvider
from faker.providers.person.en_US import Provider as PersonProvider

FAKER_VERSION: str = faker.VERSION
_POOL_SEED = 20250602

#: One home state per tenant (tenant-a → MA, …): patients of an organisation live near it.
TENANT_STATES = (
    "MA", "CA", "TX", "IL", "NY", "WA", "FL", "GA", "OH", "PA", "NC", "MI", "AZ",
    "CO", "MN", "OR", "TN", "VA", "WI", "MO", "MD", "IN", "NJ", "KY", "UT", "NM",
)  # fmt: skip
ORG_SUFFIXES = (
    "Health", "Medical Center", "Community Clinic", "Family Medicine", "Health Partners",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class WeightedPool:
    values: tuple[str, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def of(cls, weights: dict[str, float]) -> WeightedPool:
        values = tuple(weights)
        return cls(values, tuple(itertools.accumulate(weights[v] for v in values)))

    def pick(self, rng: random.Random) -> str:
        x = rng.random() * self.cumulative[-1]
        return self.values[bisect.bisect_right(self.cumulative, x)]


@dataclass(frozen=True, slots=True)
class Pools:
    first_female: WeightedPool
    first_male: WeightedPool
    last: WeightedPool
    streets: tuple[str, ...]
    cities: tuple[str, ...]
    postcode_ranges: dict[str, tuple[int, int]]


@cache
def pools() -> Pools:
    """Build the pools (≈50 ms, once per process)."""
    fake = faker.Faker("en_US")
    fake.seed_instance(_POOL_SEED)
    streets = tuple(dict.fromkeys(fake.street_name() for _ in range(600)))
    cities = tuple(dict.fromkeys(fake.city() for _ in range(300)))
    return Pools(
        first_female=WeightedPool.of(dict(PersonProvider.first_names_female)),
        first_male=WeightedPool.of(dict(PersonProvider.first_names_male)),
        last=WeightedPool.of(dict(PersonProvider.last_names)),
        streets=streets,
        cities=cities,
        postcode_ranges=dict(AddressProvider.states_postcode),
    )


def postal_code(rng: random.Random, state: str) -> str:
    low, high = pools().postcode_ranges[state]
    return f"{rng.randint(low, high):05d}"


def phone(rng: random.Random) -> str:
    """A US number in the 555-01xx block reserved for fiction, so it never reaches a person."""
    return f"({rng.randint(201, 989)}) 555-01{rng.randint(0, 99):02d}"
