package sample

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteDockerSave writes into dir (which must not exist) the unpacked
// `docker save` form (before Docker 25) of a sample image named after dir's
// base name: manifest.json, repositories, the config as <hex>.json and the
// layer as <id>/layer.tar, but no oci-layout or index.json. It stands for a
// build that used the wrong exporter.
func WriteDockerSave(dir string) error {
	if err := writeDockerSave(dir); err != nil {
		return fmt.Errorf("writing docker save sample %s: %w", dir, err)
	}
	return nil
}

func writeDockerSave(dir string) error {
	spec := Spec{Name: filepath.Base(dir), Tag: "1.0.0", Seed: "docker-save"}
	if err := checkName(spec.Name); err != nil {
		return err
	}
	platforms, err := parsePlatforms(nil)
	if err != nil {
		return err
	}
	img, err := platformImage(spec, platforms[0])
	if err != nil {
		return err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	configName, err := img.ConfigName()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	diffID, err := layers[0].DiffID()
	if err != nil {
		return err
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	layerTar, err := io.ReadAll(rc)
	if err != nil {
		return err
	}

	repo := Namespace + "/" + spec.Name
	layerID := diffID.Hex
	manifest, err := json.Marshal([]any{map[string]any{
		"Config":   configName.Hex + ".json",
		"RepoTags": []string{repo + ":" + spec.Tag},
		"Layers":   []string{layerID + "/layer.tar"},
	}})
	if err != nil {
		return err
	}
	repositories, err := json.Marshal(map[string]map[string]string{repo: {spec.Tag: layerID}})
	if err != nil {
		return err
	}
	layerJSON, err := json.Marshal(map[string]any{"id": layerID, "created": epoch, "os": "linux"})
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
	}{
		{"manifest.json", manifest},
		{"repositories", repositories},
		{configName.Hex + ".json", config},
		{layerID + "/layer.tar", layerTar},
		{layerID + "/VERSION", []byte("1.0")},
		{layerID + "/json", layerJSON},
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, layerID), 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
