// Command kubevirt-crd writes the CustomResourceDefinitions of KubeVirt's VirtualMachineInstance and
// VirtualMachine, with their full OpenAPI validation schemas, exactly as KubeVirt's operator builds them
// (kubevirt.io/kubevirt/pkg/virt-operator/resource/generate/components), as JSON files into a folder.
//
// Usage: kubevirt-crd DIR   (writes DIR/kubevirt-vmi-crd.json and DIR/kubevirt-vm-crd.json)
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	extv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"kubevirt.io/kubevirt/pkg/virt-operator/resource/generate/components"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: kubevirt-crd DIR")
		os.Exit(2)
	}
	for file, build := range map[string]func() (*extv1.CustomResourceDefinition, error){
		"kubevirt-vmi-crd.json": components.NewVirtualMachineInstanceCrd,
		"kubevirt-vm-crd.json":  components.NewVirtualMachineCrd,
	} {
		if err := write(filepath.Join(os.Args[1], file), build); err != nil {
			fmt.Fprintf(os.Stderr, "kubevirt-crd: %s: %v\n", file, err)
			os.Exit(1)
		}
	}
}

func write(path string, build func() (*extv1.CustomResourceDefinition, error)) error {
	crd, err := build()
	if err != nil {
		return err
	}
	crd.TypeMeta.APIVersion = extv1.SchemeGroupVersion.String()
	crd.TypeMeta.Kind = "CustomResourceDefinition"
	// The operator's object carries an empty status and the operator's own labels; only the definition is wanted.
	raw, err := json.Marshal(crd)
	if err != nil {
		return err
	}
	var object map[string]any
	if err := json.Unmarshal(raw, &object); err != nil {
		return err
	}
	delete(object, "status")
	if metadata, ok := object["metadata"].(map[string]any); ok {
		delete(metadata, "creationTimestamp")
	}
	out, err := json.MarshalIndent(object, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(out, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
