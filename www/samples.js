// The sample events. orgId 1, conversationId 123456789 and lastUpdated
// 1591813767000 (2020-06-10T18:29:27Z) are the values of Drift's own examples;
// "inactive" is Drift's published conversation_inactive example verbatim.

const conversation = (type) => `{
  "orgId": 1,
  "type": "${type}",
  "data": {
    "lastUpdated": 1591813767000,
    "conversationId": 123456789
  }
}`;

const status = (value) => `{
  "orgId": 1,
  "type": "conversation_status_updated",
  "data": {
    "conversationId": 123456789,
    "status": "${value}",
    "changedAt": 1591813767000
  }
}`;

export const SAMPLES = [
  {
    id: "inactive",
    label: "Inactive (Drift's example)",
    note: "conversation_inactive, Drift's published example. Yields itself, a conversation_push and (per policy) a legacy close.",
    text: conversation("conversation_inactive"),
  },
  {
    id: "manual-push",
    label: "Manual push",
    note: "conversation_manual_push: a user closed the conversation or ran /sync. Yields itself, a conversation_push and (per policy) a legacy close.",
    text: conversation("conversation_manual_push"),
  },
  {
    id: "push",
    label: "Push",
    note: "conversation_push: fires with either of the two above. Yields itself and (per policy) a legacy close.",
    text: conversation("conversation_push"),
  },
  {
    id: "status-closed",
    label: "Status closed",
    note: "conversation_status_updated, the retired legacy webhook. A close yields itself, a conversation_manual_push and a conversation_push.",
    text: status("closed"),
  },
  {
    id: "status-open",
    label: "Status open",
    note: "conversation_status_updated, the retired legacy webhook. Anything but a close passes through unchanged.",
    text: status("open"),
  },
  {
    id: "new-message",
    label: "New message",
    note: "new_message is not a conversation event: passes through unchanged, digit for digit (its id is above 2^53).",
    text: `{
  "orgId": 1,
  "type": "new_message",
  "data": {
    "id": 9007199254740993,
    "conversationId": 123456789,
    "author": { "id": 2394872, "type": "contact", "bot": false },
    "type": "chat",
    "body": "Hi! Could we book a demo next week?",
    "createdAt": 1591813767000
  }
}`,
  },
  {
    id: "broken",
    label: "Broken (invalid JSON)",
    note: "Invalid JSON, a trailing comma: the error names the line, the column and the path.",
    text: `{
  "orgId": 1,
  "type": "conversation_inactive",
  "data": {
    "lastUpdated": 1591813767000,
    "conversationId": 123456789,
  }
}`,
  },
];
