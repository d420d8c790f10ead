import type protobuf from 'protobufjs';
import { ErrorCode } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { protoRoot } from './proto-root.js';

/** Encodes and decodes one message type of proto/, typed by the generated interfaces. */
export class Codec<T, TInit> {
  private readonly type: protobuf.Type;

  constructor(readonly typeName: string) {
    this.type = protoRoot().lookupType(typeName);
  }

  encode(message: TInit): Uint8Array {
    return this.type.encode(message as unknown as Record<string, unknown>).finish();
  }

  /** Decodes a frame; anything that is not a valid message becomes FerryError(MALFORMED). */
  decode(frame: Uint8Array): T {
    try {
      return this.type.decode(frame) as unknown as T;
    } catch (err) {
      throw new FerryError(ErrorCode.MALFORMED, `cannot decode ${this.typeName}: ${errorMessage(err)}`);
    }
  }
}
