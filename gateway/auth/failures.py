"""Why a request's credentials were not accepted (kept light: no hashing imports)."""


class Unauthenticated(Exception):
    """Credentials were sent but are not valid (the message never says which part is wrong)."""


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed sign-ins from this address: retry in {retry_after} s")
        self.retry_after = retry_after
