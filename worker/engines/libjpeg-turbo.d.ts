// Types for the parts of the `@cornerstonejs/codec-libjpeg-turbo-8bit` WebAssembly build this project uses.
declare module '@cornerstonejs/codec-libjpeg-turbo-8bit/wasmjs' {
  export interface FrameInfo {
    width: number;
    height: number;
    bitsPerSample: number;
    componentCount: number;
    isSigned: boolean;
  }
  /** Views returned by the get*Buffer methods point into the module's memory: valid until the next allocation. */
  export interface JPEGDecoder {
    getEncodedBuffer(length: number): Uint8Array;
    readHeader(): void;
    decode(): void;
    getFrameInfo(): FrameInfo;
    getDecodedBuffer(): Uint8Array;
    delete(): void;
  }
  export interface JPEGEncoder {
    getDecodedBuffer(frame: FrameInfo): Uint8Array;
    /** 0-100 */
    setQuality(quality: number): void;
    /** libjpeg-turbo's TJSAMP: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0 */
    setSubSampling(subsampling: number): void;
    setProgressive(progressive: boolean): void;
    encode(): void;
    getEncodedBuffer(): Uint8Array;
    delete(): void;
  }
  export interface LibJpegTurbo {
    JPEGDecoder: new () => JPEGDecoder;
    JPEGEncoder: new () => JPEGEncoder;
  }
  const factory: (options?: object) => Promise<LibJpegTurbo>;
  export default factory;
}
