// Error bodies in each provider's shape, as the official clients parse them:
// OpenAI `{error: {message, type, param, code}}` (the client exposes `.error`, `.code`, `.type`);
// Anthropic `{type: 'error', error: {type, message}, request_id}` (the client exposes
// `.error` as the whole body, `.type` and `.apiMessage`).
import type { Api } from '../types.ts';

function openaiDefaults(status: number): { type: string; code: string | null } {
  if (status === 401) return { type: 'invalid_request_error', code: 'invalid_api_key' };
  if (status === 403) return { type: 'invalid_request_error', code: 'unsupported_country_region_territory' };
  if (status === 404) return { type: 'invalid_request_error', code: 'model_not_found' };
  if (status === 429) return { type: 'requests', code: 'rate_limit_exceeded' };
  if (status >= 500) return { type: 'server_error', code: null };
  return { type: 'invalid_request_error', code: null };
}

function anthropicType(status: number): string {
  switch (status) {
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 408:
    case 504:
      return 'timeout_error';
    case 409:
      return 'conflict_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 503:
    case 529:
      return 'overloaded_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

export interface ErrorBodyOptions {
  status: number;
  message: string;
  type?: string | undefined;
  code?: string | undefined;
  requestId: string;
}

export function errorBody(api: Api | 'unknown', o: ErrorBodyOptions): unknown {
  if (api === 'anthropic.messages')
    return {
      type: 'error',
      error: { type: o.type ?? anthropicType(o.status), message: o.message },
      request_id: o.requestId,
    };
  const defaults = openaiDefaults(o.status);
  return {
    error: { message: o.message, type: o.type ?? defaults.type, param: null, code: o.code ?? defaults.code },
  };
}
