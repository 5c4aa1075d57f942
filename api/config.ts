export interface ApiConfig {
  systemName: string;
  host: string;
  port: number;
  /** Largest accepted upload, in bytes. */
  maxUploadBytes: number;
  /** Largest accepted image, in pixels (width * height), read from the header before any decoding. */
  maxPixels: number;
  registrationOpen: boolean;
  /** Largest accepted JSON or form body, in bytes. */
  maxBodyBytes: number;
}
