declare module 'snappyjs' {
  export function uncompress(input: Buffer | Uint8Array | ArrayBuffer, maxLength?: number): Buffer;
  export function compress(input: Buffer | Uint8Array | ArrayBuffer): Buffer;
}
