import type { ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import { CallerRefusedError } from "./peer.js";
import { toServiceError } from "./status.js";

/** Where unexpected failures go; a bug's text is logged, never sent to the caller. */
export type ErrorLog = (err: unknown) => void;

/**
 * Adapts an async handler to grpc-js's callback style: authenticate first (so a refused caller
 * never reaches the handler), then run, then map any failure through the one error table.
 */
export function unary<Req, Res, Caller>(
  authenticate: (call: ServerUnaryCall<Req, Res>) => Caller,
  handler: (request: Req, caller: Caller) => Promise<Res>,
  log: ErrorLog,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    let caller: Caller;
    try {
      caller = authenticate(call);
    } catch (err) {
      callback(err instanceof CallerRefusedError ? err.serviceError : toServiceError(err, log));
      return;
    }
    handler(call.request, caller).then(
      (response) => callback(null, response),
      (err: unknown) => callback(toServiceError(err, log)),
    );
  };
}
