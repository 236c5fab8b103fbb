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
from ._credits import CreditEstimate, CreditPolicy, CreditShortage
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
from ._governor import GovernorPolicy, RateGovernor
from ._hooks import (
    EventHooks,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
    WebhookAcceptedEvent,
    WebhookRejectedEvent,
)
from ._journal import BatchJournal
from ._ledger import BatchLedger, Chunk, ChunkClaim, ClaimState, LedgerMismatchError
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
from ._raw import RawClient, RawResponse
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
from ._telemetry import Telemetry
from ._transport import KeyProvider
from ._version import __version__

__all__ = [
    "APIError",
    "AcceptedRequest",
    "Account",
    "AuthenticationError",
    "BadRequestError",
    "BatchInterruptedError",
    "BatchJournal",
    "BatchLedger",
    "BatchPolicy",
    "BatchProgress",
    "BatchSubmission",
    "Campaign",
    "Chunk",
    "ChunkClaim",
    "ClaimState",
    "ClientClosedError",
    "CompletionError",
    "CompletionEvent",
    "CompletionTimeoutError",
    "ConfigurationError",
    "CreditEstimate",
    "CreditPolicy",
    "CreditShortage",
    "DEFAULT_BASE_URL",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_RESPONSE_SIZE",
    "DEFAULT_RETRY_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "EventHooks",
    "FailedChunk",
    "GenerationAccepted",
    "GovernorPolicy",
    "InsufficientCreditsError",
    "KeyProvider",
    "Lead",
    "LeadMessages",
    "LeadOutcome",
    "LedgerMismatchError",
    "MessageType",
    "NotFoundError",
    "Outcomes",
    "PollPolicy",
    "RateGovernor",
    "RateLimitError",
    "RawClient",
    "RawResponse",
    "RejectedLead",
    "RequestEvent",
    "RequestTimeoutError",
    "ResponseEvent",
    "ResponseValidationError",
    "RetrievalMetadata",
    "RetrievedCampaign",
    "RetrievedMessages",
    "RetryEvent",
    "RetryPolicy",
    "Routes",
    "SequenceStep",
    "SequenceTemplate",
    "ServerError",
    "StopReason",
    "Telemetry",
    "Tone",
    "TransportError",
    "UnprocessableEntityError",
    "UpscaleClient",
    "UpscaleError",
    "ValidationError",
    "WebhookAcceptedEvent",
    "WebhookPayloadError",
    "WebhookRejectedEvent",
    "WebhookVerificationError",
    "__version__",
    "extensions_active",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
