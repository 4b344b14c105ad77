"""A Python client calling the celeriac task `node.slugify` by name, as it would call any Celery task.

    python3 client.py
"""
from pyapp import app

TIMEOUT = 20  # seconds

# Positional arguments...
result = app.send_task('node.slugify', args=['Hello from Python Celery!'])
print(f"node.slugify('Hello from Python Celery!') -> {result.get(timeout=TIMEOUT)!r}")

# ...and keyword arguments: they land by name because the celeriac task declares `params`.
result = app.send_task('node.slugify', kwargs={'title': 'Keyword arguments, too', 'separator': '_'})
print(f"node.slugify(title=..., separator='_') -> {result.get(timeout=TIMEOUT)!r} (state {result.state})")

# The task's result is whatever JSON the TypeScript function returned.
result = app.send_task('node.stats', args=[[3, 1, 4, 1, 5, 9, 2, 6]])
print(f"node.stats([3, 1, 4, 1, 5, 9, 2, 6]) -> {result.get(timeout=TIMEOUT)!r}")
