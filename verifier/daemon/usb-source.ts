/**
 * The station's USB device source: the `usb` package (2.x, libusb's API; prebuilt, needs libudev.so.1), loaded only
 * when the daemon starts, so that a machine without libudev still runs the daemon (mounts are still noticed, from the
 * mount table) and says why hotplug is off. Only the device's sysfs name is taken from libusb (bus number and port
 * path): nothing is opened, the identity is read from sysfs (usb-sticks.ts).
 */
import { EcluseError } from '../../sneakernet/errors.js';
import type { UsbDeviceSource } from './usb-sticks.js';

interface LibusbDevice {
  busNumber: number;
  portNumbers: number[];
}

interface LibusbModule {
  on(event: 'attach' | 'detach', listener: (d: LibusbDevice) => void): void;
  removeAllListeners(event: 'attach' | 'detach'): void;
  unrefHotplugEvents(): void;
}

/** `1-2.3`: how the kernel names the device under /sys/bus/usb/devices. Root hubs (no ports) have no such name. */
export function sysNameOf(d: LibusbDevice): string | null {
  if (!Array.isArray(d.portNumbers) || d.portNumbers.length === 0) return null;
  return `${d.busNumber}-${d.portNumbers.join('.')}`;
}

/** Loads the `usb` package; E_NOT_FOUND (with the reason) when it or libudev cannot be loaded. */
export async function libusbSource(): Promise<UsbDeviceSource> {
  let usb: LibusbModule;
  try {
    const mod = (await import('usb')) as unknown as { usb: LibusbModule };
    usb = mod.usb;
  } catch (e) {
    throw new EcluseError(
      'E_NOT_FOUND',
      `USB hotplug is off: the usb package could not be loaded (${(e as Error).message.split('\n')[0] ?? ''}); ` +
        'install libudev1, or run with --no-usb',
    );
  }
  return {
    name: 'libusb',
    start(events) {
      usb.on('attach', (d) => {
        const n = sysNameOf(d);
        if (n) events.attach(n);
      });
      usb.on('detach', (d) => {
        const n = sysNameOf(d);
        if (n) events.detach(n);
      });
      // Hotplug must not keep the process alive on its own: the daemon's own timers do.
      usb.unrefHotplugEvents();
    },
    stop() {
      usb.removeAllListeners('attach');
      usb.removeAllListeners('detach');
    },
  };
}
