import { ErrorCode } from '../gen/proto.js';

// An error with a stable code from proto/common.proto, carried unchanged over
// the wire and shown to the operator as "CODE: message".
export class FerryError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'FerryError';
    this.code = code;
  }

  override toString(): string {
    return `${ErrorCode[this.code] ?? this.code}: ${this.message}`;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
