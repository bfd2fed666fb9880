"""The service layer every front end shares, free of any chat library.

- texts: every word said to a person; replies: answers and buttons as plain data;
- reading, reading_pool, rate_limit: a picture read in a worker process, recorded, verdicts;
- training, progress: one run at a time in a child process, shown to every front end's admins;
- services: all of it built once; admin, stats: what admins ask; schedule: the clock's jobs.

Nothing here imports `telegram`, `discord` or a web framework: a test checks it.
"""
