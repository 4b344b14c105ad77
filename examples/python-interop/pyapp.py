"""The Python side: a Celery 5.2 app whose worker serves the `py` queue.

    python3 -m celery -A pyapp worker -Q py -P solo -l info

CELERY_BROKER_URL      default redis://localhost:6379/0 (the same Redis as the celeriac side)
CELERY_RESULT_BACKEND  default: the broker URL
"""
import os

from celery import Celery

BROKER = os.environ.get('CELERY_BROKER_URL', 'redis://localhost:6379/0')

app = Celery('pyapp', broker=BROKER, backend=os.environ.get('CELERY_RESULT_BACKEND', BROKER))
app.conf.update(
    # celeriac speaks Celery's protocol v2 with JSON bodies.
    task_serializer='json',
    result_serializer='json',
    accept_content=['json'],
    # The same routes as the celeriac app: each language's worker consumes its own queue.
    task_routes={'py.*': {'queue': 'py'}, 'node.*': {'queue': 'node'}},
    broker_connection_retry_on_startup=True,
)


@app.task(name='py.add')
def add(x, y):
    """Called from TypeScript as `app.declareTask<[number, number], number>('py.add')`."""
    return x + y
