"""upscale_async: the async-first Python SDK for the Upscale API.

Layout (``docs/architecture.md`` has the whole picture): ``_spec/`` is the contract the SDK and
the emulator share; the private core modules beside this file are the client (``_client``,
``_api``, ``_transport``, ``_retry``), batches (``_batch``, ``_results``, ``_journal``) and
completion (``_completion``); ``webhooks/``, ``testing/``, ``cli/`` and ``emulator/`` are the
other products, each a package of its own. This module only re-exports.
"""

from ._client import UpscaleClient
from ._completion import LeadOutcome, Outcomes
from ._config import (
    DEFAULT_BASE_URL,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_RETRY_TIMEOUT,
    DEFAULT_TIMEOUT,
    BatchPolicy,
    PollPolicy,
    RetryPolicy,
    Routes,
)
from ._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    InsufficientCreditsError,
    NotFoundError,
    RateLimitError,
    RequestTimeoutError,
    ResponseValidationError,
    ServerError,
    TransportError,
    UnprocessableEntityError,
    UpscaleError,
    ValidationError,
    WebhookPayloadError,
    WebhookVerificationError,
)
from ._journal import BatchJournal
from ._models import (
    Account,
    Campaign,
    CompletionEvent,
    GenerationAccepted,
    Lead,
    LeadMessages,
    RetrievalMetadata,
    RetrievedCampaign,
    RetrievedMessages,
    SequenceStep,
    SequenceTemplate,
)
from ._results import (
    AcceptedRequest,
    BatchInterruptedError,
    BatchProgress,
    BatchSubmission,
    CompletionError,
    CompletionTimeoutError,
    FailedChunk,
    RejectedLead,
    StopReason,
)
from ._spec.contract import MessageType, Tone
from ._spec.speedups import extensions_active
from ._version import __version__

__all__ = [
    "APIError",
    "AcceptedRequest",
    "Account",
    "AuthenticationError",
    "BadRequestError",
    "BatchInterruptedError",
    "BatchJournal",
    "BatchPolicy",
    "BatchProgress",
    "BatchSubmission",
    "Campaign",
    "ClientClosedError",
    "CompletionError",
    "CompletionEvent",
    "CompletionTimeoutError",
    "ConfigurationError",
    "DEFAULT_BASE_URL",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_RESPONSE_SIZE",
    "DEFAULT_RETRY_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "FailedChunk",
    "GenerationAccepted",
    "InsufficientCreditsError",
    "Lead",
    "LeadMessages",
    "LeadOutcome",
    "MessageType",
    "NotFoundError",
    "Outcomes",
    "PollPolicy",
    "RateLimitError",
    "RejectedLead",
    "RequestTimeoutError",
    "ResponseValidationError",
    "RetrievalMetadata",
    "RetrievedCampaign",
    "RetrievedMessages",
    "RetryPolicy",
    "Routes",
    "SequenceStep",
    "SequenceTemplate",
    "ServerError",
    "StopReason",
    "Tone",
    "TransportError",
    "UnprocessableEntityError",
    "UpscaleClient",
    "UpscaleError",
    "ValidationError",
    "WebhookPayloadError",
    "WebhookVerificationError",
    "__version__",
    "extensions_active",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
