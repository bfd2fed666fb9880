"""A training worker (`python -m bot.worker`): trains the runs the service queues in Redis
(TRAINING_BACKEND=rq) on any machine with the code, the models volume, REDIS_URL and DATABASE_URL.
A GPU worker installs the `gpu` extra (`pip install '.[gpu]'`).
"""
