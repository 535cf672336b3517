// The floor: reads the request body and answers 200, nothing else.
export default {
  async fetch(request) {
    await request.arrayBuffer();
    return new Response("{}", { headers: { "content-type": "application/json" } });
  },
};
