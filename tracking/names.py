"""Run names like MLflow's: `<adjective>-<noun>-<number>` when the client gives none."""

import secrets

ADJECTIVES = (
    "able", "bold", "brave", "bright", "calm", "clever", "crisp", "eager", "fair", "gentle",
    "glad", "grand", "keen", "kind", "lively", "lucky", "merry", "neat", "proud", "quick",
    "quiet", "rare", "sharp", "shy", "smart", "steady", "sunny", "swift", "tidy", "wise",
)  # fmt: skip
NOUNS = (
    "ant", "bat", "bear", "bee", "crow", "deer", "dove", "eel", "fox", "frog",
    "gull", "hare", "hawk", "lark", "lynx", "mole", "moth", "newt", "owl", "ram",
    "seal", "slug", "snail", "swan", "toad", "trout", "vole", "wasp", "wolf", "wren",
)  # fmt: skip


def random_run_name() -> str:
    adjective = secrets.choice(ADJECTIVES)
    noun = secrets.choice(NOUNS)
    return f"{adjective}-{noun}-{secrets.randbelow(1000)}"
