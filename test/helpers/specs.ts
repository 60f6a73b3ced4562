/**
 * The `images:` section most end-to-end tests deploy: one image `web`, the test's busybox rootfs
 * (`rootfs.tar`, see busybox-rootfs.ts) serving `site/` with httpd on `$PORT`.
 */
export const HTTPD_IMAGES = `images:
  web:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/ /srv/www
      - cmd: [/bin/sh, -c, "exec httpd -f -p 127.0.0.1:$PORT -h /srv/www"]
`
