from celery import shared_task


@shared_task(name="flowsite.ping", ignore_result=False)
def ping(payload: str = "") -> dict:
    """Echo, used to prove that a real worker consumes tasks from the broker."""
    import os

    return {"pong": payload, "pid": os.getpid()}
