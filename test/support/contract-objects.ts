/**
 * The VirtualMachineInstances the contract fixes for the three-VM lab of the lab-instance suites, as the
 * server sends them (both the simulated and the real cluster's suites compare against this).
 */
export function contractVmis(namespace: string, labels: Record<string, string>) {
  return [
    ['db.internal', 'registry.example.org/vms/image-2:1.2', 3, '3Gi'],
    ['gateway', 'registry.example.org/vms/image-0:1.0', 1, '1Gi'],
    ['web-1', 'registry.example.org/vms/image-1:1.1', 2, '2Gi'],
  ].map(([name, image, cores, memory]) => ({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace, labels },
    spec: {
      domain: {
        cpu: { cores },
        resources: { requests: { memory } },
        devices: {
          disks: [{ name: 'containerdisk', disk: {} }],
          interfaces: [{ name: 'default', masquerade: {} }],
          inputs: [{ name: 'tablet', type: 'tablet', bus: 'usb' }],
        },
      },
      networks: [{ name: 'default', pod: {} }],
      volumes: [{ name: 'containerdisk', containerDisk: { image } }],
    },
  }));
}
