"""``python -m harness``: the zygote (the one entry point inside the sandbox)."""

from .zygote import main

main()
