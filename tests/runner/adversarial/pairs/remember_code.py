# Tries (first of a pair): nothing itself; its code holds a secret ({SECRET}) that the next
# job (find_code.py) looks for in its own memory.
secret = "{SECRET}"
print("holding a secret of", len(secret), "characters")
