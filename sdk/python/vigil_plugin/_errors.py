"""Typed plugin errors, sent the way the Go SDK sends them (sdk/errors.go)."""

import grpc

INVALID_REQUEST = "invalid_request"
RATE_LIMITED = "rate_limited"
OVERLOADED = "overloaded"
CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
AUTH = "auth"
QUOTA_EXHAUSTED = "quota_exhausted"
UNAVAILABLE = "unavailable"
TIMEOUT = "timeout"
NOT_FOUND = "not_found"
UNSUPPORTED = "unsupported"
INTERNAL = "internal"

# The gRPC status sent with each class, as the Go SDK does.
CLASS_CODES = {
    INVALID_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    RATE_LIMITED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    OVERLOADED: grpc.StatusCode.UNAVAILABLE,
    CONTEXT_LENGTH_EXCEEDED: grpc.StatusCode.INVALID_ARGUMENT,
    AUTH: grpc.StatusCode.UNAUTHENTICATED,
    QUOTA_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    UNSUPPORTED: grpc.StatusCode.UNIMPLEMENTED,
    INTERNAL: grpc.StatusCode.INTERNAL,
}

TRAILER_CLASS = "vigil-error-class"
TRAILER_RETRY_AFTER = "vigil-retry-after-ms"
TRAILER_FIELD = "vigil-error-field"


class PluginError(Exception):
    """A typed error. error_class is one of the class constants;
    retry_after (seconds) applies to rate_limited and overloaded; field
    names the offending request field for invalid_request."""

    def __init__(self, error_class, message, field="", retry_after=0.0):
        if error_class not in CLASS_CODES:
            raise ValueError("unknown error class %r" % (error_class,))
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.field = field
        self.retry_after = retry_after

    def trailers(self):
        md = [(TRAILER_CLASS, self.error_class)]
        if self.retry_after > 0:
            md.append((TRAILER_RETRY_AFTER, str(int(self.retry_after * 1000))))
        if self.field:
            md.append((TRAILER_FIELD, self.field))
        return md

    def code(self):
        return CLASS_CODES[self.error_class]

    def __str__(self):
        s = self.error_class
        if self.field:
            s += " (%s)" % self.field
        return s + ": " + self.message


class FieldError(PluginError):
    """An invalid_request error about one request or configuration field.
    Returned (not raised) from Detector.configure, one per problem."""

    def __init__(self, field, message):
        super().__init__(INVALID_REQUEST, message, field=field)
