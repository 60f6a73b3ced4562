/**
 * The `images:` section most end-to-end tests deploy: one image `web`, the test's busybox rootfs
 * (`rootfs.tar`, see busybox-rootfs.ts) serving `site/` with httpd on `$PORT`. `steps` are YAML list
 * items put between the copy and the cmd (each line indented as the list is).
 */
export function httpdImages(steps: string[] = []): string {
  return `images:
  web:
    base: { rootfs: ./rootfs.tar }
    steps:
      - copy: site/ /srv/www
${steps.map((step) => `      - ${step}\n`).join('')}      - cmd: [/bin/sh, -c, "exec httpd -f -p $PORT -h /srv/www"]
`
}
