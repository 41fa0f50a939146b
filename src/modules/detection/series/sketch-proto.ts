import type { DDSketch } from '@datadog/sketches-js';
import * as compiled from '@datadog/sketches-js/dist/ddsketch/proto/compiled';

// The package's generated protobuf classes (protobufjs), imported once: DDSketch.toProto() calls
// require() for them on every call, three times, which costs more than the encoding itself when a
// backfill closes thousands of minutes. Their declarations type them as a bare protobufjs Root.
type Message = { create(fields: object): object };
const proto = compiled as unknown as {
  DDSketch: Message & { encode(m: object): { finish(): Uint8Array } };
  IndexMapping: Message & { Interpolation: { NONE: number } };
  Store: Message;
};

/**
 * A DDSketch serialised in the DDSketch protobuf format: the same bytes as `sketch.toProto()`
 * (mapping gamma, index offset and interpolation, the positive and negative stores as contiguous
 * bins with their offset, the zero count), for a sketch with the package's default logarithmic
 * mapping (interpolation NONE).
 */
export function sketchToProto(sketch: DDSketch): Uint8Array {
  const store = (s: DDSketch['store']) => proto.Store.create({ contiguousBinCounts: s.bins, contiguousBinIndexOffset: s.offset });
  const mapping = sketch.mapping as DDSketch['mapping'] & { _offset: number };
  return proto.DDSketch.encode(
    proto.DDSketch.create({
      mapping: proto.IndexMapping.create({ gamma: mapping.gamma, indexOffset: mapping._offset, interpolation: proto.IndexMapping.Interpolation.NONE }),
      positiveValues: store(sketch.store),
      negativeValues: store(sketch.negativeStore),
      zeroCount: sketch.zeroCount,
    }),
  ).finish();
}
