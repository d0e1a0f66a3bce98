"""AWS actions the local cloud lacks answer in the service's own error format, never an HTML 500.

moto raises NotImplementedError for an action it has no handler for (and for a few options of actions it
has), which its server turns into an HTML page with status 500, an answer SDKs retry (four times, for
nothing) before failing with an unreadable message. Here such an action answers with status 501 in the
service's protocol, through moto's own serializer: `{"__type": "UnknownOperationException", "message": ...}`
for JSON services, `<ErrorResponse>` with Code `InvalidAction` for query/XML ones. botocore retries neither
501 nor these codes (its retry rules cover 500, 502, 503, 504 and throttling), so the SDK raises a
ClientError at once, naming the action.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, BaseResponse
from moto.core.utils import get_service_model

STATUS = 501


class NotInLocalCloud(ServiceException):
    """The error an unimplemented action answers with; `code` depends on the protocol."""


def _code(response: BaseResponse) -> str:
    """AWS's code for an unknown action in the protocol the request came in."""
    protocol = response.determine_response_protocol(get_service_model(response.boto3_service_name))
    return "InvalidAction" if protocol in ("query", "ec2") else "UnknownOperationException"


def answer(response: BaseResponse, problem: NotImplementedError) -> tuple[int, dict[str, Any], Any]:
    """The error response for an action (or option) moto lacks, in the service's protocol."""
    action = response._get_action() or "this action"
    service = response.service_name or "this service"
    detail = str(problem).strip().rstrip(".")
    message = f"{action} is not available in the local cloud (devenv's emulator does not implement it for {service})"
    if detail and "action has not been implemented" not in detail:
        message += f": {detail}"  # an option of an action moto has
    error = NotInLocalCloud(_code(response), message + ".")
    with warnings.catch_warnings():  # moto warns that the code is not in the service's error shapes
        warnings.simplefilter("ignore")
        _, headers, body = response.serialized(ActionResult(error))
    headers["status"] = str(STATUS)
    return STATUS, headers, body


def answering_unimplemented(original: Callable[[BaseResponse], Any]) -> Callable[[BaseResponse], Any]:
    """moto's action dispatch, answering NotImplementedError with `answer` instead of an HTML 500."""

    def call_action(self: BaseResponse) -> Any:
        try:
            return original(self)
        except NotImplementedError as problem:
            return answer(self, problem)

    return call_action
