// The coordinator's and agent's logic talk through these interfaces, so the
// protocol can run over real ZeroMQ sockets or over an in-memory hub in tests.

/** Opaque id of a connected peer, stable for the life of its connection. */
export type PeerId = string;

/** The listening side (the coordinator's ROUTER). */
export interface ServerTransport {
  /** Delivers every inbound message (one or more frames) with the peer it came from. */
  onMessage(handler: (peer: PeerId, frames: Uint8Array[]) => void): void;
  /** Queues a one-frame message to a peer; dropped if that peer is gone. */
  send(peer: PeerId, frame: Uint8Array): void;
  close(): Promise<void>;
}

/** A connection to the server (an agent's or the CLI's DEALER). */
export interface ClientTransport {
  onMessage(handler: (frames: Uint8Array[]) => void): void;
  send(frame: Uint8Array): void;
  /** Bytes sent but not taken by the connection yet (its peer slow or gone); absent: not known. */
  readonly queuedBytes?: number;
  close(): Promise<void>;
}

/** Makes a fresh connection; the agent makes a new one after losing the coordinator. */
export type ClientConnector = () => ClientTransport;
