package proto

import (
	"encoding/binary"
	"errors"
	"fmt"

	flatbuffers "github.com/google/flatbuffers/go"
)

// checkIPC bounds what arrow-go will allocate for value before it is
// handed to it. arrow-go sizes slices by the vector lengths a message
// declares (the schema's fields, their children, key-value metadata) and
// allocates the body length it declares; a crafted length makes the Go
// runtime abort with "out of memory", which no recover catches. Every
// declared vector must fit in its message, and every body in the value.
// Other malformed input may still make arrow-go panic; Reset recovers.
func checkIPC(value []byte) error {
	off := 0
	for msg := 0; msg < 2; msg++ {
		if len(value)-off < 8 {
			return errors.New("truncated IPC message")
		}
		if binary.LittleEndian.Uint32(value[off:]) != 0xFFFFFFFF {
			return errors.New("not an Arrow IPC stream (no continuation marker)")
		}
		n := int(int32(binary.LittleEndian.Uint32(value[off+4:])))
		if n == 0 {
			return nil // end of stream
		}
		if n < 0 || n > len(value)-off-8 {
			return fmt.Errorf("IPC message of %d bytes past the end", n)
		}
		body, err := checkMessage(value[off+8 : off+8+n])
		if err != nil {
			return err
		}
		if body < 0 || body > int64(len(value)-off-8-n) {
			return fmt.Errorf("IPC body of %d bytes past the end", body)
		}
		off += 8 + n + int(body)
	}
	return nil
}

// Flatbuffer vtable slots of the Arrow IPC schema (Message.fbs, Schema.fbs).
const (
	slotMessageHeaderType = 6
	slotMessageHeader     = 8
	slotMessageBodyLength = 10
	slotMessageMetadata   = 12
	slotSchemaFields      = 6
	slotSchemaMetadata    = 8
	slotSchemaFeatures    = 10
	slotFieldChildren     = 14
	slotFieldMetadata     = 16
	slotBatchNodes        = 6
	slotBatchBuffers      = 8
	slotBatchVariadic     = 12

	headerSchema      = 1
	headerRecordBatch = 3
)

// checkMessage checks the vectors of one IPC message and returns its body
// length. A vector of n elements needs at least 4n bytes (offsets) in the
// message, so a larger n is a lie.
func checkMessage(fb []byte) (int64, error) {
	if len(fb) < 4 {
		return 0, errors.New("IPC message too short")
	}
	root := flatbuffers.Table{Bytes: fb, Pos: flatbuffers.GetUOffsetT(fb)}
	if err := checkVector(&root, slotMessageMetadata, len(fb)); err != nil {
		return 0, err
	}
	var body int64
	if o := flatbuffers.UOffsetT(root.Offset(slotMessageBodyLength)); o != 0 {
		body = root.GetInt64(o + root.Pos)
	}
	o := flatbuffers.UOffsetT(root.Offset(slotMessageHeader))
	if o == 0 {
		return body, nil
	}
	var hdr flatbuffers.Table
	root.Union(&hdr, o)
	switch typ := root.GetUint8Slot(slotMessageHeaderType, 0); typ {
	case headerSchema:
		for _, slot := range []flatbuffers.VOffsetT{slotSchemaMetadata, slotSchemaFeatures} {
			if err := checkVector(&hdr, slot, len(fb)); err != nil {
				return 0, err
			}
		}
		return body, checkFields(&hdr, slotSchemaFields, len(fb), 0)
	case headerRecordBatch:
		// nodes and buffers are vectors of 16-byte structs, the variadic
		// counts of int64: each bounded by 4 bytes an element, loosely.
		for _, slot := range []flatbuffers.VOffsetT{slotBatchNodes, slotBatchBuffers, slotBatchVariadic} {
			if err := checkVector(&hdr, slot, len(fb)); err != nil {
				return 0, err
			}
		}
		return body, nil
	default:
		return 0, fmt.Errorf("IPC message type %d, want a schema or a record batch", typ)
	}
}

// checkFields checks a vector of Field tables and, recursively, their
// children and metadata.
func checkFields(t *flatbuffers.Table, slot flatbuffers.VOffsetT, size, depth int) error {
	if depth > 8 {
		return errors.New("IPC schema nested too deep")
	}
	o := flatbuffers.UOffsetT(t.Offset(slot))
	if o == 0 {
		return nil
	}
	n := t.VectorLen(o)
	if n < 0 || n > size/4 {
		return fmt.Errorf("IPC vector of %d elements in a %d-byte message", n, size)
	}
	start := t.Vector(o)
	for i := range n {
		f := flatbuffers.Table{Bytes: t.Bytes, Pos: t.Indirect(start + flatbuffers.UOffsetT(i*4))}
		if err := checkVector(&f, slotFieldMetadata, size); err != nil {
			return err
		}
		if err := checkFields(&f, slotFieldChildren, size, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func checkVector(t *flatbuffers.Table, slot flatbuffers.VOffsetT, size int) error {
	o := flatbuffers.UOffsetT(t.Offset(slot))
	if o == 0 {
		return nil
	}
	if n := t.VectorLen(o); n < 0 || n > size/4 {
		return fmt.Errorf("IPC vector of %d elements in a %d-byte message", n, size)
	}
	return nil
}
