// The floor: answers 200 without reading the request body.
export default {
  async fetch() {
    return new Response("{}", { headers: { "content-type": "application/json" } });
  },
};
