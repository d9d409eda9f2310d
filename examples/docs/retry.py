"""Call flaky network services with exponential backoff."""

import random
import time


def with_backoff(call, attempts=5, base_delay=0.5):
    """Retry ``call`` when it raises, waiting longer after each failure.

    The delay doubles each time and gets random jitter, so that many clients
    failing together do not all retry at the same instant.
    """
    for attempt in range(attempts):
        try:
            return call()
        except ConnectionError:
            if attempt == attempts - 1:
                raise
            time.sleep(base_delay * 2**attempt * (1 + random.random()))
