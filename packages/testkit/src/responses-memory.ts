// What the Responses API remembers between calls: every output item by id (for
// `{type: 'item_reference', id}` inputs) and every response's full item list (for
// `previous_response_id`), so the conversation view sees the whole history.
type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class ResponsesMemory {
  #items = new Map<string, Obj>();
  #responses = new Map<string, Obj[]>();

  clear(): void {
    this.#items.clear();
    this.#responses.clear();
  }

  /**
   * The request's input as a list of items with the previous response's items in front and
   * item references replaced by the items they name. Throws for an unknown previous response.
   */
  expandInput(body: Obj): Obj[] {
    const own: unknown[] =
      typeof body.input === 'string'
        ? [{ role: 'user', content: body.input }]
        : Array.isArray(body.input)
          ? body.input
          : [];
    const previousId = body.previous_response_id;
    let previous: Obj[] = [];
    if (typeof previousId === 'string') {
      const found = this.#responses.get(previousId);
      if (found === undefined) throw new Error(`Previous response with id '${previousId}' not found.`);
      previous = found;
    }
    const resolved: Obj[] = [];
    for (const item of own) {
      if (!isObj(item)) continue;
      if (item.type === 'item_reference' && typeof item.id === 'string')
        resolved.push(this.#items.get(item.id) ?? item);
      else resolved.push(item);
    }
    return [...previous, ...resolved];
  }

  /** Remembers a finished response: its id, its expanded input and its output items. */
  remember(responseId: string, input: Obj[], output: unknown): void {
    const items = Array.isArray(output) ? output.filter(isObj) : [];
    for (const item of items) if (typeof item.id === 'string') this.#items.set(item.id, item);
    this.#responses.set(responseId, [...input, ...items]);
  }
}
