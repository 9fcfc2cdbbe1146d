/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** The gateway the page calls unless `?gateway=` or the form says otherwise. */
  readonly VITE_GATEWAY_URL?: string;
}
