# The reference a user would write with jq: drift-bridge's rules (legacy policy
# "always") over NDJSON, one outbound event per line. jq has no SHA-256, so it
# prints the events without ids; bench/run.mjs compares it with the CLI's
# output with the ids taken out.
#
#   jq -c -f bench/jq/convert.jq < events.ndjson
def legacy_close:
  {orgId, type: "conversation_status_updated",
   data: {conversationId: .data.conversationId, status: "closed", changedAt: .data.lastUpdated}}
  + (if has("token") then {token} else {} end);

def from_close($type):
  {orgId, type: $type, data: {conversationId: .data.conversationId, lastUpdated: .data.changedAt}}
  + (if has("token") then {token} else {} end);

if .type == "conversation_inactive" or .type == "conversation_manual_push" then
  ., (.type = "conversation_push"), legacy_close
elif .type == "conversation_push" then
  ., legacy_close
elif .type == "conversation_status_updated" and .data.status == "closed" then
  ., from_close("conversation_manual_push"), from_close("conversation_push")
else
  .
end
