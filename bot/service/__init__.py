"""The service around the queue: the scheduler (`bot run`), its jobs, its lease, and what `bot status` reports."""
