"""schemathesis hooks for .ci/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

A bulk upload may be NDJSON, documented as a string body; schemathesis knows no serializer for
application/x-ndjson, so it sends such strings as it sends text/plain.
"""

import schemathesis

schemathesis.serializer.alias("application/x-ndjson", "text/plain")
